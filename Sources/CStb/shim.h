// Debian's libstb-dev: image decoding (PNG, JPEG, ...) and PNG writing.
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
