"""CUDA C++ sources of the fused kernels, compiled at run time with pycuda (nvcc ships with
JetPack) and cached per CUDA context, so each process compiles a source once; pycuda's disk
cache then spares later processes the compilation, not nvcc itself: pycuda.compiler runs
`nvcc --version` (and the preprocessor for sources with #include) for every SourceModule to
key its cache (inducer/pycuda pycuda/compiler.py, compile_plain), so nvcc must be found even
when the kernels are cached. pycuda runs a bare `nvcc` from PATH by default; JetPack installs it
in /usr/local/cuda/bin, which `ros2 launch` and systemd services often leave off PATH, so
`find_nvcc` also looks under $CUDA_HOME/bin and /usr/local/cuda/bin and hands pycuda the path.

Every kernel has one thread per output pixel. Template parameters (channels, layout, dtype,
activation) are instantiated below as extern "C" entry points named in `*_NAMES`.
"""

PREPROCESS_SOURCE = r"""
#include <cuda_fp16.h>

__device__ __forceinline__ void store(float* out, int index, float value) { out[index] = value; }
__device__ __forceinline__ void store(__half* out, int index, float value) { out[index] = __float2half_rn(value); }

// Source coordinate and weight of an output pixel, as cv::resize INTER_LINEAR computes them:
// half-pixel centres, samples before the first pixel clamp to it, past the last to the last.
__device__ __forceinline__ void source_index(int d, float scale, int size, int* i0, int* i1, float* weight)
{
    float f = (d + 0.5f) * scale - 0.5f;
    int i = (int)floorf(f);
    float w = f - i;
    if (i < 0) { i = 0; w = 0.f; }
    if (i >= size - 1) { i = size - 1; w = 0.f; }
    *i0 = i;
    *i1 = min(i + 1, size - 1);
    *weight = w;
}

// uint8 HWC image (1, 3 or 4 channels; alpha ignored) -> bilinear resize into the valid region
// of the network input (letterbox borders get the pad value), channel reorder, value * gain +
// offset, written as NCHW or NHWC float/half.
template <int CHANNELS, bool NCHW, typename T>
__device__ void preprocess(const unsigned char* __restrict__ image, int image_width, int image_height,
                           int image_pitch, T* __restrict__ out, int net_width, int net_height,
                           int region_x, int region_y, int region_width, int region_height,
                           float scale_x, float scale_y, int source0, int source1, int source2,
                           float gain0, float gain1, float gain2, float offset0, float offset1,
                           float offset2, float pad0, float pad1, float pad2)
{
    const int x = blockIdx.x * blockDim.x + threadIdx.x;
    const int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= net_width || y >= net_height) return;
    float value[3];
    const int rx = x - region_x, ry = y - region_y;
    if (rx < 0 || ry < 0 || rx >= region_width || ry >= region_height) {
        value[0] = pad0; value[1] = pad1; value[2] = pad2;
    } else {
        int x0, x1, y0, y1;
        float wx, wy;
        source_index(rx, scale_x, image_width, &x0, &x1, &wx);
        source_index(ry, scale_y, image_height, &y0, &y1, &wy);
        const unsigned char* top = image + y0 * image_pitch;
        const unsigned char* bottom = image + y1 * image_pitch;
        float pixel[3];
        #pragma unroll
        for (int c = 0; c < (CHANNELS < 3 ? 1 : 3); ++c) {
            const float t = top[x0 * CHANNELS + c] + wx * (top[x1 * CHANNELS + c] - (float)top[x0 * CHANNELS + c]);
            const float b = bottom[x0 * CHANNELS + c] + wx * (bottom[x1 * CHANNELS + c] - (float)bottom[x0 * CHANNELS + c]);
            // rounded like the uint8 image cv::resize gives the CPU path (and gave training)
            pixel[c] = floorf(t + wy * (b - t) + 0.5f);
        }
        if (CHANNELS < 3) { pixel[1] = pixel[2] = pixel[0]; }
        value[0] = pixel[source0] * gain0 + offset0;
        value[1] = pixel[source1] * gain1 + offset1;
        value[2] = pixel[source2] * gain2 + offset2;
    }
    const int plane = net_width * net_height;
    const int pixel_index = y * net_width + x;
    #pragma unroll
    for (int c = 0; c < 3; ++c) {
        store(out, NCHW ? c * plane + pixel_index : pixel_index * 3 + c, value[c]);
    }
}

#define PREPROCESS_ENTRY(NAME, CHANNELS, NCHW, T)                                                       \
extern "C" __global__ void NAME(const unsigned char* image, int image_width, int image_height,          \
    int image_pitch, T* out, int net_width, int net_height, int region_x, int region_y,                 \
    int region_width, int region_height, float scale_x, float scale_y, int source0, int source1,        \
    int source2, float gain0, float gain1, float gain2, float offset0, float offset1, float offset2,    \
    float pad0, float pad1, float pad2)                                                                 \
{                                                                                                      \
    preprocess<CHANNELS, NCHW, T>(image, image_width, image_height, image_pitch, out, net_width,        \
        net_height, region_x, region_y, region_width, region_height, scale_x, scale_y, source0,         \
        source1, source2, gain0, gain1, gain2, offset0, offset1, offset2, pad0, pad1, pad2);            \
}

#define PREPROCESS_LAYOUTS(CHANNELS)                                          \
PREPROCESS_ENTRY(preprocess_c##CHANNELS##_nchw_float32, CHANNELS, true, float)   \
PREPROCESS_ENTRY(preprocess_c##CHANNELS##_nhwc_float32, CHANNELS, false, float)  \
PREPROCESS_ENTRY(preprocess_c##CHANNELS##_nchw_float16, CHANNELS, true, __half)  \
PREPROCESS_ENTRY(preprocess_c##CHANNELS##_nhwc_float16, CHANNELS, false, __half)

PREPROCESS_LAYOUTS(1)
PREPROCESS_LAYOUTS(3)
PREPROCESS_LAYOUTS(4)
"""

# image pointer, 3 ints, out pointer, 6 ints, 2 floats, 3 ints, 9 floats
PREPROCESS_ARGS = "PiiiPiiiiiiffiiifffffffff"


def preprocess_kernel_name(channels, layout, dtype):
    return "preprocess_c{}_{}_{}".format(channels, layout.lower(), dtype)


SEGMENTATION_SOURCE = r"""
#include <cuda_fp16.h>

__device__ __forceinline__ float load(const float* p, int i) { return p[i]; }
__device__ __forceinline__ float load(const __half* p, int i) { return __half2float(p[i]); }

// Class id of each output pixel: the first of the highest scores over `classes` channels.
template <bool NCHW, typename T>
__device__ void argmax_mask(const T* __restrict__ scores, unsigned char* __restrict__ mask,
                            int width, int height, int classes)
{
    const int x = blockIdx.x * blockDim.x + threadIdx.x;
    const int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= width || y >= height) return;
    const int pixel = y * width + x, plane = width * height;
    int best = 0;
    float best_score = load(scores, NCHW ? pixel : pixel * classes);
    for (int c = 1; c < classes; ++c) {
        const float score = load(scores, NCHW ? c * plane + pixel : pixel * classes + c);
        if (score > best_score) { best_score = score; best = c; }
    }
    mask[pixel] = (unsigned char)best;
}

// One channel: class 1 where the value exceeds the cutoff (a logit or a probability).
template <typename T>
__device__ void threshold_mask(const T* __restrict__ scores, unsigned char* __restrict__ mask,
                               int width, int height, float cutoff)
{
    const int x = blockIdx.x * blockDim.x + threadIdx.x;
    const int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= width || y >= height) return;
    const int pixel = y * width + x;
    mask[pixel] = load(scores, pixel) > cutoff ? 1 : 0;
}

extern "C" {
__global__ void argmax_nchw_float32(const float* s, unsigned char* m, int w, int h, int c) { argmax_mask<true>(s, m, w, h, c); }
__global__ void argmax_nhwc_float32(const float* s, unsigned char* m, int w, int h, int c) { argmax_mask<false>(s, m, w, h, c); }
__global__ void argmax_nchw_float16(const __half* s, unsigned char* m, int w, int h, int c) { argmax_mask<true>(s, m, w, h, c); }
__global__ void argmax_nhwc_float16(const __half* s, unsigned char* m, int w, int h, int c) { argmax_mask<false>(s, m, w, h, c); }
__global__ void threshold_float32(const float* s, unsigned char* m, int w, int h, float t) { threshold_mask(s, m, w, h, t); }
__global__ void threshold_float16(const __half* s, unsigned char* m, int w, int h, float t) { threshold_mask(s, m, w, h, t); }

// The crop (left, top, crop_width x crop_height) of the mask resized to the image with
// cv::resize INTER_NEAREST's rule (source = floor(dest * inverse scale), in double), and, when
// `colours` is given, each class id looked up in a 256 x 3 palette.
__global__ void mask_to_image(const unsigned char* __restrict__ mask, int mask_width, int left, int top,
                              int crop_width, int crop_height, unsigned char* __restrict__ image_mask,
                              int image_width, int image_height, double inverse_x, double inverse_y,
                              const unsigned char* __restrict__ palette, unsigned char* __restrict__ colours)
{
    const int x = blockIdx.x * blockDim.x + threadIdx.x;
    const int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= image_width || y >= image_height) return;
    const int sx = min((int)floor(x * inverse_x), crop_width - 1);
    const int sy = min((int)floor(y * inverse_y), crop_height - 1);
    const unsigned char id = mask[(top + sy) * mask_width + left + sx];
    const int pixel = y * image_width + x;
    image_mask[pixel] = id;
    if (colours) {
        colours[pixel * 3] = palette[id * 3];
        colours[pixel * 3 + 1] = palette[id * 3 + 1];
        colours[pixel * 3 + 2] = palette[id * 3 + 2];
    }
}
}
"""

MASK_ARGS = {"argmax": "PPiii", "threshold": "PPiif"}
MASK_TO_IMAGE_ARGS = "PiiiiiPiiddPP"


JETPACK_CUDA_HOME = "/usr/local/cuda"   # where JetPack (and NVIDIA's installers) put the CUDA toolkit


def find_nvcc():
    """Path of nvcc: on PATH, else $CUDA_HOME/bin (or $CUDA_PATH/bin), else JetPack's /usr/local/cuda/bin;
    None where there is none."""
    import os
    import shutil

    found = shutil.which("nvcc")
    if found:
        return found
    for home in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), JETPACK_CUDA_HOME):
        if home:
            candidate = os.path.join(home, "bin", "nvcc")
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return candidate
    return None


def nvcc_missing_reason(detail=None):
    """Why the GPU kernels cannot be compiled here, and how to point trt_infer at nvcc."""
    return ("nvcc (CUDA's compiler, which pycuda runs to build the GPU pre-processing kernels) {}; JetPack "
            "installs it in /usr/local/cuda/bin, which `ros2 launch` and systemd often leave off PATH: set "
            "CUDA_HOME=/usr/local/cuda (or add its bin folder to PATH) in the node's environment, or set processing "
            "to 'cpu'".format(detail or "is not on PATH, in $CUDA_HOME/bin or in /usr/local/cuda/bin"))


def compile_module(context, source):
    """The pycuda module of `source` in `context`, compiled on first use and kept by the context."""
    return context.cached(("module", source), lambda: _compile(source))


def _compile(source):
    from pycuda.compiler import SourceModule

    from trt_infer.errors import MissingDependencyError

    nvcc = find_nvcc()
    if nvcc is None:
        raise MissingDependencyError(nvcc_missing_reason())
    try:
        # -std=c++11 for the templates under JetPack 4's nvcc 10.2 (which defaults to C++03).
        return SourceModule(source, nvcc=nvcc, no_extern_c=True, options=["-std=c++11", "-O3"])
    except OSError as error:   # pytools.prefork.ExecError: nvcc could not be run
        raise MissingDependencyError(nvcc_missing_reason("at {} cannot be run ({})".format(nvcc, error)))


def launch_grid(width, height, block=(32, 8, 1)):
    """(grid, block) covering width x height with one thread per pixel."""
    return ((width + block[0] - 1) // block[0], (height + block[1] - 1) // block[1], 1), block
