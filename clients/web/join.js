// The dev invite page (/dev/join?invite=<jwt>, only with --dev): ask the student's name, trade the
// invite for a student token, and go to the classroom link.

import { byTestId } from "./dom.js";
import { fetchJson } from "./dev-api.js";
import { mountDeviceCheck } from "./views/device_check.js";
import { decodeTokenClaims } from "./token.js";

const form = document.getElementById("join");
const error = byTestId("join-error");
const params = new URLSearchParams(window.location.search);
const invite = params.get("invite");
// A personal link names its student; the name can still be changed (the identity cannot).
if (params.get("name")) byTestId("join-name").value = params.get("name");

function showError(message) {
  error.textContent = message;
  error.hidden = false;
}

if (!invite) showError("This invite link is incomplete: it has no invite token.");

// The class's name and its teacher's travel in the invite (claims `class_name`, `teacher_name`);
// unverified, they are only shown.
try {
  const claims = invite ? decodeTokenClaims(invite) : {};
  if (typeof claims.class_name === "string" && claims.class_name) {
    byTestId("join-class-name").textContent = claims.class_name;
    document.title = `Join ${claims.class_name} · liveclass`;
  }
  if (typeof claims.teacher_name === "string" && claims.teacher_name) {
    byTestId("join-teacher-name").textContent = claims.teacher_name;
    byTestId("join-teacher").hidden = false;
  }
} catch {
  // a damaged invite is reported when the form is sent
}

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  error.hidden = true;
  if (!invite) {
    showError("This invite link is incomplete: it has no invite token.");
    return;
  }
  const submit = byTestId("join-submit");
  submit.disabled = true;
  try {
    const params = new URLSearchParams({ invite, name: byTestId("join-name").value.trim() });
    const answer = await fetchJson(`/dev/api/student-token?${params}`);
    deviceCheck.stop(); // release the devices: the classroom opens the chosen ones
    window.location.href = answer.link;
  } catch (err) {
    showError(err.message);
    submit.disabled = false;
  }
});

// Before entering: see yourself, hear yourself, pick the devices (kept for the classroom page).
const deviceCheck = mountDeviceCheck();
const checkDevices = byTestId("join-check-devices");
checkDevices.addEventListener("click", () => {
  checkDevices.hidden = true;
  checkDevices.after(deviceCheck.node);
  deviceCheck.start();
});
