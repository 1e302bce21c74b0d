// The dev landing page (/dev, only with --dev): create a room, then show the teacher link and the
// student invite link.

import { byTestId, el } from "./dom.js";
import { fetchJson } from "./dev-api.js";

const form = document.getElementById("new-room");
const error = byTestId("dev-error");
const links = document.getElementById("links");
const personal = document.getElementById("personal");
/** The teacher's token of the room just made: it asks for personal links. */
let teacherToken = "";

function absolute(link) {
  return new URL(link, window.location.origin).href;
}

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  error.hidden = true;
  const params = new URLSearchParams({ teacher_name: byTestId("dev-teacher-name").value.trim() });
  const className = byTestId("dev-class-name").value.trim();
  if (className) params.set("class_name", className);
  const create = byTestId("dev-create");
  create.disabled = true;
  try {
    const room = await fetchJson(`/dev/api/new-room?${params}`);
    byTestId("dev-room").textContent = room.room;
    byTestId("dev-teacher-link").value = absolute(room.teacher_link);
    byTestId("dev-student-link").value = absolute(room.student_link);
    byTestId("dev-open-teacher").href = absolute(room.teacher_link);
    teacherToken = new URL(room.teacher_link, window.location.origin).hash.replace(/^#token=/, "");
    links.hidden = false;
    personal.hidden = false;
  } catch (err) {
    error.textContent = err.message;
    error.hidden = false;
  } finally {
    create.disabled = false;
  }
});

links.addEventListener("click", async (ev) => {
  const button = ev.target.closest("[data-copy]");
  if (!button) return;
  const input = byTestId(button.dataset.copy);
  try {
    await navigator.clipboard.writeText(input.value);
  } catch {
    // The clipboard API needs a secure context; fall back to selecting the text.
    input.select();
    document.execCommand("copy");
  }
  button.textContent = "Copied";
  setTimeout(() => { button.textContent = "Copy"; }, 1500);
});

personal.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  error.hidden = true;
  const input = byTestId("dev-personal-name");
  const params = new URLSearchParams({ teacher: teacherToken, name: input.value.trim() });
  try {
    const made = await fetchJson(`/dev/api/personal-invite?${params}`);
    const link = el("input", { type: "text", readonly: true, value: absolute(made.link), testid: "dev-personal-link",
      "aria-label": `Personal link for ${made.name}` });
    byTestId("dev-personal-links").append(el("li", {}, el("span", { text: `${made.name}: ` }), link));
    input.value = "";
  } catch (err) {
    error.textContent = err.message;
    error.hidden = false;
  }
});
