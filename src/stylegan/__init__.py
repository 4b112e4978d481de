"""stylegan: style-based generators (StyleGAN, StyleGAN2/ADA) in pure PyTorch."""

__version__ = "0.1.0"


def __getattr__(name: str):
    # Lazy so that `import stylegan` stays cheap and networks never import io.
    if name in ("load_generator", "load_discriminator", "load_networks", "save_networks"):
        from stylegan import io

        return getattr(io, name)
    raise AttributeError(f"module 'stylegan' has no attribute {name!r}")
