"""Running models: results (results.py), the Segmenter (segmenter.py), devices and timings (devices.py), the
byte-bounded model cache (model_cache.py), the engine (engine.py), speed (speed.py: building blocks;
optimiser.py: applying them; fastconv.py: CPU convolutions and linear layers; fast_attention.py: fused
attention), class scores to a label map (label_map.py), the out-of-memory fallback (memory.py) and Hugging
Face ZeroGPU (zerogpu.py)."""
