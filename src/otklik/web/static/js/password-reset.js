/* The reset token travels in the URL fragment (#token=...), which browsers never send to the server, so it
   stays out of access logs and Referer headers. Copy it into the form, then drop it from the address bar.
   It is kept in this tab's sessionStorage until the password is set, so a typo in the form loses nothing. */
(function () {
  "use strict";
  var KEY = "otklik-reset-token";
  if (document.getElementById("reset-done") || document.getElementById("reset-error") && !document.getElementById("reset-form")) {
    sessionStorage.removeItem(KEY);
  }
  var field = document.getElementById("reset-token");
  if (!field) return;
  var match = /(?:^|[#&])token=([A-Za-z0-9_-]{10,200})/.exec(window.location.hash || "");
  if (match) {
    field.value = match[1];
    sessionStorage.setItem(KEY, match[1]);
    history.replaceState(null, "", window.location.pathname);
  } else {
    field.value = sessionStorage.getItem(KEY) || "";
  }
  if (!field.value) {
    document.getElementById("reset-no-token").hidden = false;
  }
})();
