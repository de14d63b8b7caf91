"""Where the kit runs: paths and overrides (``config``), Java and the Delta jars (``jars``), the
Spark session (``spark``) and the machine diagnosis (``doctor``)."""
