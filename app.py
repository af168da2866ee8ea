"""SegGallery's Gradio entry point (the Hugging Face Space's app_file): `python app.py`."""

from seggallery.runtime import zerogpu

zerogpu.setup()  # on ZeroGPU `spaces` must be imported before torch initialises CUDA; a no-op elsewhere

from seggallery.backends import is_cached  # noqa: E402
from seggallery.runtime.engine import Engine  # noqa: E402
from seggallery.ui import CSS, build_app, launch_options, limit_malloc_arenas  # noqa: E402

limit_malloc_arenas()  # before any worker thread allocates: keeps the server's memory flat under load
engine = Engine()
zerogpu.preload(engine, is_cached)  # ZeroGPU wants models on CUDA at import time; a no-op elsewhere
demo = build_app(engine)

if __name__ == "__main__":
    demo.launch(css=CSS, **launch_options())
