// The console's only script (ours, no library): it refreshes the overview in place and asks
// before a destructive form is sent. Every page works without it; it only adds these.
"use strict";
(function () {
  var live = document.getElementById("live");
  if (live) {
    var url = live.getAttribute("data-live");
    var busy = false;
    setInterval(function () {
      if (busy || document.hidden) return;
      busy = true;
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) { live.innerHTML = html; live.removeAttribute("data-stale"); })
        .catch(function () { live.setAttribute("data-stale", "true"); })
        .finally(function () { busy = false; });
    }, 2000);
  }
  document.addEventListener("submit", function (e) {
    var msg = e.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) e.preventDefault();
  });
})();
