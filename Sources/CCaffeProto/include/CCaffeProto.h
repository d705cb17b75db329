/* The generated protobuf-c code for caffe.proto (see Tools/caffe/regenerate.sh). */
#include <protobuf-c/protobuf-c.h>
#include "caffe.pb-c.h"
