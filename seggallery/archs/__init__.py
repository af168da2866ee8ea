"""Our own nn.Modules for architectures that no installed library provides (each file reads like its paper)."""
