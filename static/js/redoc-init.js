// Starts Redoc on the API reference page (templates/api/redoc.html). The page's policy allows
// <style> elements only with its nonce, which this script carries: Redoc gives it to the
// styles it adds.
(function () {
  "use strict";
  var script = document.currentScript;
  // Redoc's menu shows Redocly's logo from their server, which the policy refuses: no request
  // leaves for another host. Given an empty address instead, Redoc drops the logo.
  var REDOCLY_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg";
  var src = Object.getOwnPropertyDescriptor(HTMLImageElement.prototype, "src");
  Object.defineProperty(HTMLImageElement.prototype, "src", {
    configurable: true,
    enumerable: src.enumerable,
    get: src.get,
    set: function (value) {
      src.set.call(this, value === REDOCLY_LOGO ? "" : value);
    },
  });
  Redoc.init(
    script.dataset.specUrl,
    { nonce: script.nonce },
    document.getElementById("redoc-container")
  );
})();
