// Driver module.
