// The Find-a-desk floor plan: the arrow keys move the focus to the nearest desk that
// way (every desk can take the focus; a free desk is a link, Tab still reaches it).
// The page works without this script. When it has run, the plan says so: the
// attribute data-ready and the performance mark "floorplan-ready".

const KEYS = {
  ArrowRight: [1, 0],
  ArrowLeft: [-1, 0],
  ArrowDown: [0, 1],
  ArrowUp: [0, -1],
};

// A desk's place on the plan: its translate(x y), which the page gives every desk.
function position(desk) {
  const { e, f } = desk.transform.baseVal.consolidate().matrix;
  return [e, f];
}

// The desk nearest to `from` in the direction [dx, dy]: ahead of it on that axis,
// the one sideways counting double.
function nearest(desks, from, [dx, dy]) {
  const [fx, fy] = position(from);
  let best = null;
  let bestScore = Infinity;
  for (const desk of desks) {
    const [x, y] = position(desk);
    const ahead = (x - fx) * dx + (y - fy) * dy;
    if (desk === from || ahead <= 0) continue;
    const aside = Math.abs((x - fx) * dy) + Math.abs((y - fy) * dx);
    const score = ahead + 2 * aside;
    if (score < bestScore) {
      best = desk;
      bestScore = score;
    }
  }
  return best;
}

function setUp(plan) {
  const desks = Array.from(plan.querySelectorAll("[data-desk]"));
  for (const desk of desks) {
    if (!desk.hasAttribute("href")) desk.setAttribute("tabindex", "-1");
  }
  plan.addEventListener("keydown", (event) => {
    const step = KEYS[event.key];
    const from = event.target.closest("[data-desk]");
    if (!step || !from) return;
    const to = nearest(desks, from, step);
    event.preventDefault();
    if (to) to.focus();
  });
  plan.setAttribute("data-ready", "");
  performance.mark("floorplan-ready");
}

for (const plan of document.querySelectorAll("svg.floorplan")) setUp(plan);
