"""Datasets (folder or zip of images, NVIDIA's dataset.json labels), the dataset tool and Fashion-MNIST."""

from stylegan.data.dataset import DatasetWarning, ImageFolderDataset
from stylegan.data.fashion_mnist import load_fashion_mnist
from stylegan.data.images import DatasetError
from stylegan.data.tool import DatasetReport, DestinationExistsError, make_dataset

__all__ = [
    "DatasetError",
    "DatasetReport",
    "DatasetWarning",
    "DestinationExistsError",
    "ImageFolderDataset",
    "load_fashion_mnist",
    "make_dataset",
]
