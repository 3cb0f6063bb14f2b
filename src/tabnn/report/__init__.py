"""The HTML report of ``tabnn train``, ``evaluate`` and ``compare``: its data, how that data
is stored, the figures and the page.

The flow is data -> builders -> plots -> html:

- :mod:`tabnn.report.data`: :class:`~tabnn.report.data.ReportData`, the plain data a report
  shows, and its stored form beside a model (``report.json``, ``report_arrays.safetensors``).
- :mod:`tabnn.report.summaries`: numbers that fill the data (dataset summary, rows per
  class, permutation importance).
- :mod:`tabnn.report.builders`: the :class:`~tabnn.report.data.ReportData` of each command,
  built from a fitted estimator and its results.
- :mod:`tabnn.report.plots` and :mod:`tabnn.report.curves`: the matplotlib figures
  (history, class balance, fold scores, importance; confusion, ROC, precision-recall,
  calibration, threshold).
- :mod:`tabnn.report.html`: the self-contained page, drawn from the data alone, so
  ``tabnn report MODEL_DIR`` can draw it again at any time.

Importing this package imports none of them; :mod:`tabnn.report.data` loads neither
matplotlib nor scikit-learn.
"""
