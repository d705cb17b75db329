// CaffeImport module.
