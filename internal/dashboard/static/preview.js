// Live preview: the template page's form renders on every change, a moment after typing stops,
// without a page load. The server renders the preview exactly as for the form's own submit; this
// only swaps the answer's preview into the page. Without script, the Preview button does it.
(function () {
  "use strict";
  var form = document.getElementById("preview-form");
  var area = document.getElementById("preview-area");
  if (!form || !area || !window.fetch || !window.DOMParser) return;
  var timer = null, seq = 0;
  function render() {
    var mine = ++seq;
    fetch(form.action, { method: "POST", body: new URLSearchParams(new FormData(form)), credentials: "same-origin" })
      .then(function (resp) { return resp.text(); })
      .then(function (html) {
        if (mine !== seq) return; // a later change is on its way
        var next = new DOMParser().parseFromString(html, "text/html").getElementById("preview-area");
        if (next) area.replaceChildren.apply(area, Array.prototype.slice.call(next.childNodes).map(function (n) { return document.importNode(n, true); }));
      })
      .catch(function () { /* the Preview button still works */ });
  }
  form.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(render, 300);
  });
})();
