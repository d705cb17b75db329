/* The generated protobuf-c code for onnx.proto (see Tools/onnx/regenerate.sh). */
#include <protobuf-c/protobuf-c.h>
#include "onnx.pb-c.h"
