// The case form's live 身份证号 check (GB 11643-1999): as the agent or the clerk types, the error is shown
// beside the field in the same words the server uses. No inline script (the pages' CSP forbids it); the form
// works the same without JavaScript, and the server checks again with python-stdnum.
(function () {
  "use strict";
  var WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  var CHECK = "10X98765432";
  var PROVINCES = "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 61 62 63 64 65 81 82 83".split(" ");
  var HINT = "请对照身份证原件重新输入";

  function compact(value) {
    var v = value.normalize ? value.normalize("NFKC") : value; // full-width digits and Ｘ
    return v.replace(/[\s-]/g, "").toUpperCase();
  }

  // The problem with a complete number, or "" when it is valid. `typing`: the agent is still typing.
  function problem(value, typing) {
    var v = compact(value);
    if (!v) { return ""; }
    if (typing && v.length < 18) { return ""; }
    if (v.length === 15 && /^\d+$/.test(v)) { return "这是 15 位旧号码，请填写第二代身份证上的 18 位号码"; }
    if (v.length !== 18) { return "身份证号应为 18 位，现为 " + v.length + " 位。" + HINT; }
    if (!/^\d{17}[\dX]$/.test(v)) { return "身份证号格式错误：前 17 位为数字，最后一位为数字或 X。" + HINT; }
    var sum = 0;
    for (var i = 0; i < 17; i++) { sum += parseInt(v.charAt(i), 10) * WEIGHTS[i]; }
    if (CHECK.charAt(sum % 11) !== v.charAt(17)) { return "身份证号校验位错误。" + HINT; }
    var y = parseInt(v.substr(6, 4), 10), m = parseInt(v.substr(10, 2), 10), d = parseInt(v.substr(12, 2), 10);
    var born = new Date(y, m - 1, d);
    if (born.getFullYear() !== y || born.getMonth() !== m - 1 || born.getDate() !== d) {
      return "身份证号中的出生日期 " + v.substr(6, 8) + " 不存在。" + HINT;
    }
    if (y < 1900 || born > new Date()) { return "身份证号中的出生日期不合理。" + HINT; }
    if (PROVINCES.indexOf(v.substr(0, 2)) < 0 && v.charAt(0) !== "9") { return "身份证号的地区码不存在。" + HINT; }
    return "";
  }

  function watch(input) {
    var box = input.closest("[data-id-field]") || input.parentNode;
    var live = box.querySelector("[data-live-error]");
    if (!live) { return; }
    var server = box.querySelectorAll("[data-server-error]");
    var typed = false;

    function show(typing) {
      var text = problem(input.value, typing);
      live.textContent = text;
      live.hidden = !text;
      var stale = typed; // once the number is changed, the server's message is about the old one
      for (var i = 0; i < server.length; i++) { server[i].hidden = stale; }
      var bad = !!text || (!stale && server.length > 0);
      box.classList.toggle("has-error", bad);
      input.setAttribute("aria-invalid", bad ? "true" : "false");
    }

    input.addEventListener("input", function () { typed = true; show(true); });
    input.addEventListener("blur", function () { show(false); });
    input.addEventListener("change", function () { show(false); });
    if (input.value && !server.length) { show(false); }
  }

  var inputs = document.querySelectorAll("input[data-id-number]");
  for (var i = 0; i < inputs.length; i++) { watch(inputs[i]); }
})();
