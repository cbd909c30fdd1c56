// The console's floor-plan editor: drag a desk (pointer events) or move it with the
// arrow keys (Shift: a whole grid step) and press Enter; either way the desk's X and
// Y in the list below are set and its form is sent (a POST with the CSRF token; the
// page comes back with the desk saved). Without this script the list's forms work.

const STEP = 0.25; // grid steps an arrow key moves a desk (Shift: 1)
const KEYS = { ArrowRight: [1, 0], ArrowLeft: [-1, 0], ArrowDown: [0, 1], ArrowUp: [0, -1] };

function place(desk) {
  const { e, f } = desk.transform.baseVal.consolidate().matrix;
  return [e, f];
}

function setUp(plan) {
  const num = (name) => Number(plan.dataset[name]);
  const [cell, pad, x0, y0, half] = ["cell", "pad", "x0", "y0", "half"].map(num);
  const status = document.getElementById("editor-status");
  const say = (key) => { if (status) status.textContent = status.dataset[key] || ""; };

  // The plan's point under the pointer (its viewBox units).
  function point(event) {
    const p = new DOMPoint(event.clientX, event.clientY);
    return p.matrixTransform(plan.getScreenCTM().inverse());
  }
  function moveTo(desk, x, y) {
    desk.setAttribute("transform", `translate(${x} ${y})`);
    const id = desk.dataset.desk;
    const gridX = Math.max(0, x0 + (x - half - pad) / cell);
    const gridY = Math.max(0, y0 + (y - pad) / cell);
    document.getElementById(`x-${id}`).value = String(Math.round(gridX * 100) / 100);
    document.getElementById(`y-${id}`).value = String(Math.round(gridY * 100) / 100);
  }
  function save(desk) {
    const form = document.getElementById(`desk-form-${desk.dataset.desk}`);
    say("saving");
    form.requestSubmit();
  }

  for (const desk of plan.querySelectorAll("[data-desk]")) {
    let drag = null;
    desk.addEventListener("pointerdown", (event) => {
      if (event.button !== 0) return;
      const [x, y] = place(desk);
      const at = point(event);
      drag = { dx: at.x - x, dy: at.y - y, from: [x, y] };
      desk.setPointerCapture(event.pointerId);
      desk.classList.add("dragging");
      event.preventDefault();
    });
    desk.addEventListener("pointermove", (event) => {
      if (!drag) return;
      const at = point(event);
      moveTo(desk, at.x - drag.dx, at.y - drag.dy);
    });
    const drop = (event, keep) => {
      if (!drag) return;
      const [x, y] = place(desk);
      const moved = Math.hypot(x - drag.from[0], y - drag.from[1]) >= 2;
      if (!keep || !moved) moveTo(desk, ...drag.from);
      desk.classList.remove("dragging");
      drag = null;
      if (keep && moved) save(desk);
    };
    desk.addEventListener("pointerup", (event) => drop(event, true));
    desk.addEventListener("pointercancel", (event) => drop(event, false));
    desk.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        save(desk);
        return;
      }
      const step = KEYS[event.key];
      if (!step) return;
      event.preventDefault();
      const by = (event.shiftKey ? 1 : STEP) * cell;
      const [x, y] = place(desk);
      moveTo(desk, Math.max(half, x + step[0] * by), Math.max(0, y + step[1] * by));
      say("moved");
    });
  }
  plan.setAttribute("data-ready", "");
}

for (const plan of document.querySelectorAll("svg.plan-editor")) setUp(plan);
