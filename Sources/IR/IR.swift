// IR module.
