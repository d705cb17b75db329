/* Placeholder until Tools/caffe/regenerate.sh generates caffe.pb-c.c. */
