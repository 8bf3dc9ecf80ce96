"""A native library that does not load here (as xllamacpp without the system's libgomp)."""

raise ImportError("libfake.so.1: cannot open shared object file: No such file or directory")
