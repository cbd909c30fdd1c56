// My attendance: with the person's consent (the checkbox, off by default), the
// browser's location and its accuracy go into the clock form's hidden fields.
// Without JavaScript, or without consent, the form is sent without them.
const round = (value, places) => Number(value.toFixed(places));

function setUp(box) {
  const consent = box.querySelector('input[name="share_location"]');
  const status = box.querySelector(".geo-status");
  const field = (name) => box.querySelector(`input[name="${name}"]`);
  const fill = (lat, lon, accuracy) => {
    field("lat").value = lat;
    field("lon").value = lon;
    field("accuracy_m").value = accuracy;
  };
  consent.addEventListener("change", () => {
    fill("", "", "");
    status.textContent = "";
    if (!consent.checked) return;
    if (!("geolocation" in navigator)) {
      status.textContent = box.dataset.failed;
      return;
    }
    status.textContent = box.dataset.finding;
    navigator.geolocation.getCurrentPosition(
      (position) => {
        const { latitude, longitude, accuracy } = position.coords;
        fill(round(latitude, 6), round(longitude, 6), round(accuracy, 1));
        status.textContent = box.dataset.found.replace("{metres}", Math.round(accuracy));
      },
      () => {
        status.textContent = box.dataset.failed;
      },
      { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 },
    );
  });
}

document.querySelectorAll("[data-geolocate]").forEach(setUp);
