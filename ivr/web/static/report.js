// The public report form (issue 14): fill the coordinates from the phone's
// position when the citizen asks (a button, never on load), and keep a second
// tap on "send" from posting the form twice while a video uploads. Nothing
// here is needed to send a report: without script the form still works.
(function () {
  "use strict";
  var form = document.getElementById("report-form");
  if (!form) { return; }
  var button = document.getElementById("use-position");
  var status = document.getElementById("position-status");
  var language = document.body.getAttribute("data-language");
  var texts = language === "en"
    ? { asking: "Finding your position…", done: "Position filled in.", failed: "Your position could not be found; type the address instead." }
    : { asking: "Đang xác định vị trí…", done: "Đã điền vị trí.", failed: "Không xác định được vị trí; vui lòng nhập địa chỉ." };
  if (button && navigator.geolocation) {
    button.hidden = false;
    button.addEventListener("click", function () {
      status.textContent = texts.asking;
      navigator.geolocation.getCurrentPosition(function (position) {
        document.getElementById("f-latitude").value = position.coords.latitude.toFixed(6);
        document.getElementById("f-longitude").value = position.coords.longitude.toFixed(6);
        status.textContent = texts.done;
      }, function () {
        status.textContent = texts.failed;
      }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
    });
  }
  var summary = document.getElementById("error-summary");
  if (summary) { summary.focus(); }
  form.addEventListener("submit", function () {
    var send = document.getElementById("send-report");
    // The server makes one case of a double post anyway (the form's token);
    // this only spares the citizen a second upload.
    window.setTimeout(function () { send.disabled = true; }, 0);
  });
})();
