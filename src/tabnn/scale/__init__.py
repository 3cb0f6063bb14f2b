"""Beyond one table in memory: training on a stream, scoring with Spark.

- ``streaming``: ``train --stream``: the first pass, sampled statistics, chunked epochs
- ``spark``: ``predict_spark``, a Spark DataFrame scored with ``mapInPandas``
"""
