// The stb implementations, from the system headers (libstb-dev), compiled into fn2e. Only the
// formats fn2e reads are built: PNG, JPEG and BMP. (Fuzzing the full set found Debian's stb reading
// past a buffer on a 16-bit PNM file; PNM, PSD, TGA, GIF, HDR and PIC are left out.)
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
