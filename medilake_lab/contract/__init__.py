"""The contracts every part of the kit relies on: the raw feeds (``feeds``), the clinical code
tables (``codes``) and the one list of labs (``labs``, read from ``labs.yaml``)."""
