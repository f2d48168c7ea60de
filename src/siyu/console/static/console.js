// The console's small behaviours; everything works without them, they only save a click.
(function () {
  "use strict";

  function autosubmit(root) {
    root.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () { select.form.requestSubmit(); });
    });
  }

  function confirmations(root) {
    root.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); event.stopImmediatePropagation(); }
      }, true);
      form.addEventListener("htmx:confirm", function (event) {
        event.preventDefault();
        if (window.confirm(form.dataset.confirm)) { event.detail.issueRequest(true); }
      });
    });
  }

  // Every `.chart[data-chart]` is a bar chart of {labels, counts} (the dashboard sends days instead of labels),
  // or of several series side by side, {days, series: [{name, counts}]}, with a legend;
  // each page keeps a table or figures beside it that say the same without script.
  var PALETTE = ["#f59e0b", "#6366f1", "#ec4899"];

  function drawChart(el) {
    var data = JSON.parse(el.dataset.chart);
    var labels = data.labels || data.days.map(function (d) { return d.slice(5); });
    var styles = getComputedStyle(document.documentElement);
    var accent = styles.getPropertyValue("--accent").trim() || "#0f766e";
    var muted = styles.getPropertyValue("--text-muted").trim() || "#64748b";
    var grid = styles.getPropertyValue("--border").trim() || "#e2e8f0";
    var instance = window.echarts.init(el, null, { renderer: "canvas" });
    var option = {
      animation: false,
      grid: { left: 48, right: 16, top: 16, bottom: 28 },
      tooltip: { trigger: "axis" },
      xAxis: {
        type: "category", data: labels,
        axisLine: { lineStyle: { color: grid } }, axisTick: { show: false }, axisLabel: { color: muted }
      },
      yAxis: {
        type: "value", minInterval: 1,
        splitLine: { lineStyle: { color: grid } }, axisLabel: { color: muted }
      },
      series: (data.series || [{ name: el.dataset.series, counts: data.counts }]).map(function (s, i) {
        return { name: s.name, type: "bar", data: s.counts, barMaxWidth: 28,
                 itemStyle: { color: i ? PALETTE[(i - 1) % PALETTE.length] : accent, borderRadius: [3, 3, 0, 0] } };
      })
    };
    if (data.series) {
      option.legend = { top: 0, textStyle: { color: muted } };
      option.grid.top = 36;
    }
    instance.setOption(option);
    window.addEventListener("resize", function () { instance.resize(); });
  }

  function charts() {
    if (!window.echarts) { return; }
    document.querySelectorAll(".chart[data-chart]").forEach(drawChart);
  }

  document.addEventListener("DOMContentLoaded", function () {
    autosubmit(document);
    confirmations(document);
    charts();
  });

  // htmx leaves 4xx answers unswapped; show their message where flashes go.
  document.addEventListener("htmx:responseError", function (event) {
    var area = document.getElementById("flash-area");
    if (area) { area.innerHTML = event.detail.xhr.responseText; }
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    autosubmit(event.target);
    confirmations(event.target);
    // A polled report swaps in fresh chart elements: draw those not drawn yet.
    if (window.echarts) {
      document.querySelectorAll(".chart[data-chart]").forEach(function (el) {
        if (!el.querySelector("canvas")) { drawChart(el); }
      });
    }
  });
})();
