// Reference module.
