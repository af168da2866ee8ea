"""Running models: results (results.py), the Segmenter (segmenter.py), devices and timings (devices.py), the
byte-bounded model cache (model_cache.py), the engine (engine.py), speed (speed.py: building blocks;
optimiser.py: applying them; fastconv.py: CPU convolutions), the out-of-memory fallback (memory.py) and
Hugging Face ZeroGPU (zerogpu.py)."""
