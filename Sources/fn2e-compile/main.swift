print("fn2e-compile")
