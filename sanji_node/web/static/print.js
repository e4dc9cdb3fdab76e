// The printout's 打印 button (no inline scripts: the pages' Content-Security-Policy forbids them).
document.querySelectorAll("[data-print]").forEach(function (b) {
  b.addEventListener("click", function () { window.print(); });
});

// 返回 links: back to the page before when there is one (without JavaScript the link goes to the home page).
document.querySelectorAll("[data-back]").forEach(function (a) {
  a.addEventListener("click", function (event) {
    if (window.history.length > 1) {
      event.preventDefault();
      window.history.back();
    }
  });
});
