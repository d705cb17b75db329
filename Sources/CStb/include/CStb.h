// Debian's libstb-dev headers: image decoding (PNG, JPEG, ...) and PNG writing. The implementation
// is compiled here (stb.c) rather than linked from libstb.so, so that the fuzz build instruments it.
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
