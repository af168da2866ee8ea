"""SegGallery's Gradio entry point (the Hugging Face Space's app_file): `python app.py`."""

from seggallery.ui import CSS, build_app, launch_options, limit_malloc_arenas

limit_malloc_arenas()  # before any worker thread allocates: keeps the server's memory flat under load
demo = build_app()

if __name__ == "__main__":
    demo.launch(css=CSS, **launch_options())
