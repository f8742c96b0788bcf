// mtmd-ref: dumps reference tensors from llama.cpp's libllama + libmtmd for numerical comparison tests.
//
// Written against the public headers only (include/llama.h, tools/mtmd/mtmd.h, tools/mtmd/mtmd-helper.h,
// ggml/include/ggml-backend.h). CPU only, fixed thread count, greedy decoding: the same inputs give the same bytes.
//
// Usage:
//   mtmd-ref --model TEXT.gguf --mmproj MMPROJ.gguf --image IMG.(png|jpg) --prompt "... <__media__> ..." --out DIR
//            [--threads 1] [--n-predict 16] [--n-ctx 4096] [--n-batch 512] [--ubatch N] [--flash-attn off|on|auto]
//            [--cache-type f16|f32|bf16]
//            [--no-add-special] [--no-parse-special] [--ignore-eos] [--no-pixels]
//            [--image-min-tokens N] [--image-max-tokens N] [--prompt-file FILE] [--verbose]
//   mtmd-ref --text-only --model TEXT.gguf --prompt "..." --out DIR [...]   (no mmproj/image: plain text prompt)
//
// Output directory (all binaries little-endian, row-major, no header; shapes in meta.json):
//   meta.json                  shapes, token ids, positions, chunk layout, settings
//   logits.f32                 [n_text_positions, n_vocab]   logits at every text token of the prompt
//   gen_logits.f32             [n_generated, n_vocab]        row i = distribution greedy token i was taken from
//   media<k>_pixels.f32        [batch, 3, H, W] (NCHW)       preprocessed image as fed to the vision encoder
//   media<k>_embd.f32          [n_tokens, n_embd_inp]        mtmd_encode_chunk + mtmd_get_output_embd
//   media<k>_pos.i32           [4, n_tokens]                 positions of the image embeddings as llama_batch.pos
//                                                            gets them (M-RoPE: sections t, y, x, z; else 4x 1-D)
//
// Exit codes: 0 ok, 2 bad arguments, 3 model/mmproj load failure, 4 tokenize/image failure, 5 encode/decode failure.

#include "ggml.h"
#include "ggml-backend.h"
#include "llama.h"
#include "mtmd.h"
#include "mtmd-helper.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <vector>

namespace {

struct options {
    std::string model, mmproj, image, prompt, out;
    bool have_prompt = false;
    bool text_only = false;
    int threads = 1;
    int n_predict = 16;
    int n_ctx = 4096;
    int n_batch = 512;
    int n_ubatch = 0; // 0: = n_batch
    std::string flash_attn = "off";
    std::string cache_type = "f16";
    bool add_special = true;
    bool parse_special = true;
    bool ignore_eos = false;
    bool dump_pixels = true;
    int image_min_tokens = -1;
    int image_max_tokens = -1;
    bool verbose = false;
};

[[noreturn]] void die(int code, const std::string & msg) {
    fprintf(stderr, "mtmd-ref: %s\n", msg.c_str());
    exit(code);
}

void usage() {
    fprintf(stderr,
        "usage: mtmd-ref --model TEXT.gguf --mmproj MMPROJ.gguf --image IMG --prompt TEXT --out DIR\n"
        "                [--threads N=1] [--n-predict N=16] [--n-ctx N=4096] [--n-batch N=512] [--ubatch N]\n"
        "                [--flash-attn off|on|auto] [--cache-type f16|f32|bf16] [--no-add-special] [--no-parse-special]\n"
        "                [--ignore-eos]"
        " [--no-pixels] [--image-min-tokens N] [--image-max-tokens N] [--prompt-file FILE] [--verbose]\n"
        "       mtmd-ref --text-only --model TEXT.gguf --prompt TEXT --out DIR [...]\n"
        "the prompt must contain the media marker (%s) once per image unless --text-only\n",
        mtmd_default_marker());
}

int to_int(const char * flag, const char * v) {
    char * end = nullptr;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0') die(2, std::string("bad integer for ") + flag + ": " + v);
    return (int) x;
}

std::string read_text_file(const std::string & path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) die(2, "cannot read " + path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

options parse_args(int argc, char ** argv) {
    options o;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        auto next = [&]() -> const char * {
            if (i + 1 >= argc) die(2, "missing value for " + a);
            return argv[++i];
        };
        if (a == "--model" || a == "-m") o.model = next();
        else if (a == "--mmproj") o.mmproj = next();
        else if (a == "--image") o.image = next();
        else if (a == "--prompt" || a == "-p") { o.prompt = next(); o.have_prompt = true; }
        else if (a == "--prompt-file") { o.prompt = read_text_file(next()); o.have_prompt = true; }
        else if (a == "--out" || a == "-o") o.out = next();
        else if (a == "--threads" || a == "-t") o.threads = to_int("--threads", next());
        else if (a == "--n-predict" || a == "-n") o.n_predict = to_int("--n-predict", next());
        else if (a == "--n-ctx" || a == "-c") o.n_ctx = to_int("--n-ctx", next());
        else if (a == "--n-batch" || a == "-b") o.n_batch = to_int("--n-batch", next());
        else if (a == "--ubatch") o.n_ubatch = to_int("--ubatch", next());
        else if (a == "--flash-attn") o.flash_attn = next();
        else if (a == "--cache-type") o.cache_type = next();
        else if (a == "--no-add-special") o.add_special = false;
        else if (a == "--no-parse-special") o.parse_special = false;
        else if (a == "--ignore-eos") o.ignore_eos = true;
        else if (a == "--no-pixels") o.dump_pixels = false;
        else if (a == "--image-min-tokens") o.image_min_tokens = to_int("--image-min-tokens", next());
        else if (a == "--image-max-tokens") o.image_max_tokens = to_int("--image-max-tokens", next());
        else if (a == "--text-only") o.text_only = true;
        else if (a == "--verbose" || a == "-v") o.verbose = true;
        else if (a == "--help" || a == "-h") { usage(); exit(0); }
        else { usage(); die(2, "unknown argument " + a); }
    }
    if (o.model.empty()) { usage(); die(2, "--model is required"); }
    if (o.out.empty()) { usage(); die(2, "--out is required"); }
    if (!o.have_prompt) { usage(); die(2, "--prompt or --prompt-file is required"); }
    if (!o.text_only) {
        if (o.mmproj.empty()) { usage(); die(2, "--mmproj is required (or pass --text-only)"); }
        if (o.image.empty()) { usage(); die(2, "--image is required (or pass --text-only)"); }
    }
    if (o.threads < 1 || o.n_batch < 1 || o.n_ctx < 1 || o.n_predict < 0) die(2, "threads, n-batch, n-ctx must be >= 1, n-predict >= 0");
    if (o.n_ubatch <= 0) o.n_ubatch = o.n_batch;
    if (o.flash_attn != "off" && o.flash_attn != "on" && o.flash_attn != "auto") die(2, "--flash-attn takes off|on|auto");
    if (o.cache_type != "f16" && o.cache_type != "f32" && o.cache_type != "bf16") die(2, "--cache-type takes f16|f32|bf16");
    return o;
}

// ---- small output helpers ------------------------------------------------------------------------------------

// length of the valid UTF-8 sequence starting at s[i], 0 if invalid
size_t utf8_len(const std::string & s, size_t i) {
    const unsigned char c = (unsigned char) s[i];
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > s.size()) return 0;
    for (size_t k = 1; k < n; k++) if ((((unsigned char) s[i + k]) >> 6) != 0x2) return 0;
    return n;
}

// JSON string literal; bytes that are not valid UTF-8 (e.g. a partial byte-fallback token) become U+FFFD
std::string json_str(const std::string & s) {
    std::string r = "\"";
    for (size_t i = 0; i < s.size();) {
        const size_t n = utf8_len(s, i);
        if (n == 0) { r += "\\ufffd"; i++; continue; }
        if (n > 1) { r.append(s, i, n); i += n; continue; }
        const unsigned char c = (unsigned char) s[i++];
        switch (c) {
            case '"': r += "\\\""; break;
            case '\\': r += "\\\\"; break;
            case '\n': r += "\\n"; break;
            case '\r': r += "\\r"; break;
            case '\t': r += "\\t"; break;
            default:
                if (c < 0x20) { char b[8]; snprintf(b, sizeof b, "\\u%04x", c); r += b; }
                else r += (char) c;
        }
    }
    return r + "\"";
}

template <typename T> std::string json_arr(const std::vector<T> & v) {
    std::string r = "[";
    for (size_t i = 0; i < v.size(); i++) { if (i) r += ","; r += std::to_string(v[i]); }
    return r + "]";
}

void write_bin(const std::string & path, const void * data, size_t bytes) {
    FILE * f = fopen(path.c_str(), "wb");
    if (!f) die(5, "cannot write " + path + ": " + strerror(errno));
    if (bytes && fwrite(data, 1, bytes, f) != bytes) die(5, "short write " + path);
    fclose(f);
}

void mkdirs(const std::string & path) {
    std::string cur;
    for (size_t i = 0; i <= path.size(); i++) {
        if (i == path.size() || path[i] == '/') {
            if (!cur.empty()) {
                if (mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST) die(2, "cannot create " + cur + ": " + strerror(errno));
            }
        }
        if (i < path.size()) cur += path[i];
    }
}

// ---- logging -------------------------------------------------------------------------------------------------

bool g_verbose = false;
void log_cb(ggml_log_level level, const char * text, void *) {
    static ggml_log_level last = GGML_LOG_LEVEL_INFO;
    if (level == GGML_LOG_LEVEL_CONT) level = last; else last = level;
    if (g_verbose || level == GGML_LOG_LEVEL_ERROR || level == GGML_LOG_LEVEL_WARN) fputs(text, stderr);
}

// ---- capture of the preprocessed pixels -----------------------------------------------------------------------
// The clip graph names its pixel input "inp_raw" (ggml [W, H, 3, B]). It is a graph leaf, so the scheduler's
// eval callback never sees it directly; we ask for the first node that reads it and copy the source out then.
struct pixel_capture {
    bool armed = false;
    bool done = false;
    std::vector<float> data;
    int64_t ne[4] = {0, 0, 0, 0};
};

const ggml_tensor * find_inp_raw(const ggml_tensor * t) {
    for (int i = 0; i < GGML_MAX_SRC; i++) {
        const ggml_tensor * s = t->src[i];
        if (s && strcmp(ggml_get_name(s), "inp_raw") == 0) return s;
    }
    return nullptr;
}

bool capture_cb(ggml_tensor * t, bool ask, void * ud) {
    auto * cap = (pixel_capture *) ud;
    if (!cap->armed || cap->done) return ask ? false : true;
    const ggml_tensor * src = find_inp_raw(t);
    if (ask) return src != nullptr;
    if (src && src->type == GGML_TYPE_F32) {
        cap->data.resize(ggml_nelements(src));
        ggml_backend_tensor_get(src, cap->data.data(), 0, ggml_nbytes(src));
        for (int i = 0; i < 4; i++) cap->ne[i] = src->ne[i];
        cap->done = true;
    }
    return true;
}

llama_token argmax(const float * row, int n) {
    int best = 0;
    for (int i = 1; i < n; i++) if (row[i] > row[best]) best = i;
    return best;
}

std::string piece(const llama_vocab * vocab, llama_token t) {
    char buf[256];
    int n = llama_token_to_piece(vocab, t, buf, sizeof buf, 0, true);
    if (n < 0) {
        std::string big(-n, '\0');
        n = llama_token_to_piece(vocab, t, big.data(), (int) big.size(), 0, true);
        return n > 0 ? big.substr(0, n) : std::string();
    }
    return std::string(buf, n);
}

} // namespace

int main(int argc, char ** argv) {
    options o = parse_args(argc, argv);
    g_verbose = o.verbose;
    llama_log_set(log_cb, nullptr);
    mtmd_helper_log_set(log_cb, nullptr);
    mkdirs(o.out);
    llama_backend_init();

    // ---- text model, CPU only ----
    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    llama_model * model = llama_model_load_from_file(o.model.c_str(), mp);
    if (!model) die(3, "failed to load text model " + o.model);
    const llama_vocab * vocab = llama_model_get_vocab(model);
    const int n_vocab = llama_vocab_n_tokens(vocab);

    const llama_flash_attn_type fa = o.flash_attn == "on" ? LLAMA_FLASH_ATTN_TYPE_ENABLED
                                   : o.flash_attn == "auto" ? LLAMA_FLASH_ATTN_TYPE_AUTO : LLAMA_FLASH_ATTN_TYPE_DISABLED;
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t) o.n_ctx;
    cp.n_batch = (uint32_t) o.n_batch;
    cp.n_ubatch = (uint32_t) o.n_ubatch;
    cp.n_threads = o.threads;
    cp.n_threads_batch = o.threads;
    cp.flash_attn_type = fa;
    const ggml_type kv = o.cache_type == "f32" ? GGML_TYPE_F32 : o.cache_type == "bf16" ? GGML_TYPE_BF16 : GGML_TYPE_F16;
    cp.type_k = kv;
    cp.type_v = kv;
    cp.no_perf = true;
    llama_context * lctx = llama_init_from_model(model, cp);
    if (!lctx) die(3, "failed to create llama context");

    // ---- mtmd context ----
    pixel_capture cap;
    mtmd_context * mctx = nullptr;
    if (!o.text_only) {
        mtmd_context_params mcp = mtmd_context_params_default();
        mcp.use_gpu = false;
        mcp.n_threads = o.threads;
        mcp.print_timings = false;
        mcp.warmup = false;
        mcp.flash_attn_type = fa;
        if (o.image_min_tokens > 0) mcp.image_min_tokens = o.image_min_tokens;
        if (o.image_max_tokens > 0) mcp.image_max_tokens = o.image_max_tokens;
        if (o.dump_pixels) {
            mcp.cb_eval = capture_cb;
            mcp.cb_eval_user_data = &cap;
        }
        mctx = mtmd_init_from_file(o.mmproj.c_str(), model, mcp);
        if (!mctx) die(3, "failed to load mmproj " + o.mmproj + " (see llama.cpp errors above)");
        if (!mtmd_support_vision(mctx)) die(3, "mmproj has no vision encoder");
    }

    // ---- tokenize into chunks ----
    struct chunk_info {
        std::string type;
        std::vector<llama_token> tokens; // text chunks
        size_t n_tokens = 0;
        llama_pos n_pos = 0, pos_start = 0;
        std::string id, files;
    };
    std::vector<chunk_info> infos;
    mtmd_input_chunks * chunks = nullptr;
    uint32_t bmp_nx = 0, bmp_ny = 0;

    if (o.text_only) {
        int n = -llama_tokenize(vocab, o.prompt.c_str(), (int) o.prompt.size(), nullptr, 0, o.add_special, o.parse_special);
        chunk_info ci;
        ci.type = "text";
        ci.tokens.resize(std::max(n, 0));
        if (n > 0 && llama_tokenize(vocab, o.prompt.c_str(), (int) o.prompt.size(), ci.tokens.data(), n, o.add_special, o.parse_special) != n)
            die(4, "tokenize failed");
        ci.n_tokens = ci.tokens.size();
        ci.n_pos = (llama_pos) ci.n_tokens;
        infos.push_back(ci);
    } else {
        mtmd_helper_bitmap_wrapper bw = mtmd_helper_bitmap_init_from_file(mctx, o.image.c_str(), false, mtmd_helper_init_opt_default());
        if (!bw.bitmap) die(4, "failed to load image " + o.image);
        if (bw.video_ctx) die(4, "video input is not supported by mtmd-ref");
        bmp_nx = mtmd_bitmap_get_nx(bw.bitmap);
        bmp_ny = mtmd_bitmap_get_ny(bw.bitmap);
        mtmd_input_text txt{o.prompt.c_str(), o.prompt.size(), o.add_special, o.parse_special};
        const mtmd_bitmap * bmps[1] = {bw.bitmap};
        chunks = mtmd_input_chunks_init();
        int32_t rc = mtmd_tokenize(mctx, chunks, &txt, bmps, 1);
        mtmd_bitmap_free(bw.bitmap);
        if (rc != 0) die(4, "mtmd_tokenize failed with " + std::to_string(rc) + ": the prompt must contain the media marker " +
                             mtmd_get_marker(mctx) + " exactly once, and the image must preprocess (see errors above)");
        for (size_t i = 0; i < mtmd_input_chunks_size(chunks); i++) {
            const mtmd_input_chunk * c = mtmd_input_chunks_get(chunks, i);
            chunk_info ci;
            auto ty = mtmd_input_chunk_get_type(c);
            ci.type = ty == MTMD_INPUT_CHUNK_TYPE_TEXT ? "text" : ty == MTMD_INPUT_CHUNK_TYPE_IMAGE ? "image" : "audio";
            if (ty == MTMD_INPUT_CHUNK_TYPE_TEXT) {
                size_t n = 0;
                const llama_token * t = mtmd_input_chunk_get_tokens_text(c, &n);
                ci.tokens.assign(t, t + n);
            } else {
                const char * id = mtmd_input_chunk_get_id(c);
                ci.id = id ? id : "";
            }
            ci.n_tokens = mtmd_input_chunk_get_n_tokens(c);
            ci.n_pos = mtmd_input_chunk_get_n_pos(c);
            infos.push_back(ci);
        }
    }

    // ---- evaluate: text chunks with logits on every token, media chunks via encode + helper decode ----
    const bool use_mrope = mctx ? mtmd_decode_use_mrope(mctx) : false;
    std::vector<float> logits;            // [n_text, n_vocab]
    std::vector<llama_token> logit_tokens;
    std::vector<int> logit_pos, logit_chunk;
    std::string media_json;
    llama_pos n_past = 0;
    int media_k = 0;
    llama_batch tb = llama_batch_init(o.n_batch, 0, 1);

    for (size_t ci_idx = 0; ci_idx < infos.size(); ci_idx++) {
        chunk_info & ci = infos[ci_idx];
        ci.pos_start = n_past;
        if (ci.type == "text") {
            size_t i = 0;
            while (i < ci.tokens.size()) {
                tb.n_tokens = 0;
                for (; i < ci.tokens.size() && tb.n_tokens < o.n_batch; i++) {
                    const int j = tb.n_tokens++;
                    tb.token[j] = ci.tokens[i];
                    tb.pos[j] = n_past;
                    tb.n_seq_id[j] = 1;
                    tb.seq_id[j][0] = 0;
                    tb.logits[j] = true;
                    logit_tokens.push_back(ci.tokens[i]);
                    logit_pos.push_back(n_past);
                    logit_chunk.push_back((int) ci_idx);
                    n_past++;
                }
                if (llama_decode(lctx, tb) != 0) die(5, "llama_decode failed on text chunk " + std::to_string(ci_idx));
                for (int j = 0; j < tb.n_tokens; j++) {
                    const float * row = llama_get_logits_ith(lctx, j);
                    if (!row) die(5, "no logits for batch row " + std::to_string(j));
                    logits.insert(logits.end(), row, row + n_vocab);
                }
            }
        } else {
            const mtmd_input_chunk * c = mtmd_input_chunks_get(chunks, ci_idx);
            cap.armed = true;
            cap.done = false;
            if (mtmd_encode_chunk(mctx, c) != 0) die(5, "mtmd_encode_chunk failed on chunk " + std::to_string(ci_idx));
            cap.armed = false;
            float * embd = mtmd_get_output_embd(mctx);
            const int n_embd_inp = llama_model_n_embd_inp(model);
            const std::string pfx = "media" + std::to_string(media_k);
            write_bin(o.out + "/" + pfx + "_embd.f32", embd, sizeof(float) * ci.n_tokens * (size_t) n_embd_inp);

            // positions the helper gives the decoder (same computation as mtmd_helper_decode_image_chunk)
            std::vector<int32_t> pos(4 * ci.n_tokens);
            uint32_t gx = 0, gy = 0;
            const mtmd_image_tokens * it = mtmd_input_chunk_get_tokens_image(c);
            for (size_t k = 0; k < ci.n_tokens; k++) {
                if (use_mrope && it) {
                    mtmd_decoder_pos p = mtmd_image_tokens_get_decoder_pos(it, n_past, k);
                    pos[k] = (int32_t) p.t;
                    pos[ci.n_tokens + k] = (int32_t) p.y;
                    pos[2 * ci.n_tokens + k] = (int32_t) p.x;
                    pos[3 * ci.n_tokens + k] = (int32_t) p.z;
                    gx = std::max(gx, p.x - (uint32_t) n_past + 1);
                    gy = std::max(gy, p.y - (uint32_t) n_past + 1);
                } else if (use_mrope) { // audio under M-RoPE: 1-D in all sections
                    for (int s = 0; s < 4; s++) pos[s * ci.n_tokens + k] = (int32_t) (n_past + k);
                } else {
                    for (int s = 0; s < 4; s++) pos[s * ci.n_tokens + k] = (int32_t) (n_past + k);
                }
            }
            write_bin(o.out + "/" + pfx + "_pos.i32", pos.data(), pos.size() * sizeof(int32_t));

            std::string pix = "null";
            if (cap.done) {
                write_bin(o.out + "/" + pfx + "_pixels.f32", cap.data.data(), cap.data.size() * sizeof(float));
                pix = "{\"file\":" + json_str(pfx + "_pixels.f32") + ",\"dtype\":\"f32\",\"layout\":\"NCHW\",\"shape\":[" +
                      std::to_string(cap.ne[3]) + "," + std::to_string(cap.ne[2]) + "," + std::to_string(cap.ne[1]) + "," +
                      std::to_string(cap.ne[0]) + "],\"batch\":" + std::to_string(cap.ne[3]) + ",\"channels\":" +
                      std::to_string(cap.ne[2]) + ",\"height\":" + std::to_string(cap.ne[1]) + ",\"width\":" +
                      std::to_string(cap.ne[0]) + "}";
            }
            ci.files = "\"media\":" + std::to_string(media_k) +
                ",\"pixels\":" + pix +
                ",\"embd\":{\"file\":" + json_str(pfx + "_embd.f32") + ",\"dtype\":\"f32\",\"shape\":[" +
                    std::to_string(ci.n_tokens) + "," + std::to_string(n_embd_inp) + "]}" +
                ",\"positions\":{\"file\":" + json_str(pfx + "_pos.i32") + ",\"dtype\":\"i32\",\"shape\":[4," +
                    std::to_string(ci.n_tokens) + "],\"sections\":" + (use_mrope ? "[\"t\",\"y\",\"x\",\"z\"]" : "[\"pos\",\"pos\",\"pos\",\"pos\"]") + "}" +
                (use_mrope && it ? ",\"grid\":{\"x\":" + std::to_string(gx) + ",\"y\":" + std::to_string(gy) + "}" : std::string()) +
                ",\"non_causal\":" + (mtmd_decode_use_non_causal(mctx, c) ? "true" : "false");

            llama_pos new_n_past = n_past;
            if (mtmd_helper_decode_image_chunk(mctx, lctx, c, embd, n_past, 0, o.n_batch, &new_n_past, nullptr, nullptr) != 0)
                die(5, "decoding the media embeddings failed on chunk " + std::to_string(ci_idx));
            n_past = new_n_past; // = pos_start + n_pos (for M-RoPE: max(grid x, grid y), not n_tokens)
            media_k++;
        }
    }
    const size_t n_text = logit_tokens.size();
    write_bin(o.out + "/logits.f32", logits.data(), logits.size() * sizeof(float));
    const llama_pos n_past_prompt = n_past;

    // ---- greedy continuation ----
    std::vector<llama_token> gen;
    std::vector<int> gen_pos;
    std::vector<float> gen_logits;
    std::string gen_text;
    bool stopped_eog = false;
    if (o.n_predict > 0 && n_text == 0) die(5, "prompt ends without text tokens to continue from");
    if (o.n_predict > 0) {
        std::vector<float> cur(logits.end() - n_vocab, logits.end());
        for (int s = 0; s < o.n_predict; s++) {
            gen_logits.insert(gen_logits.end(), cur.begin(), cur.end());
            const llama_token t = argmax(cur.data(), n_vocab);
            gen.push_back(t);
            gen_pos.push_back(n_past);
            gen_text += piece(vocab, t);
            if (!o.ignore_eos && llama_vocab_is_eog(vocab, t)) { stopped_eog = true; break; }
            if (s + 1 == o.n_predict) break;
            tb.n_tokens = 1;
            tb.token[0] = t;
            tb.pos[0] = n_past++;
            tb.n_seq_id[0] = 1;
            tb.seq_id[0][0] = 0;
            tb.logits[0] = true;
            if (llama_decode(lctx, tb) != 0) die(5, "llama_decode failed during generation");
            const float * row = llama_get_logits_ith(lctx, 0);
            cur.assign(row, row + n_vocab);
        }
    }
    write_bin(o.out + "/gen_logits.f32", gen_logits.data(), gen_logits.size() * sizeof(float));
    llama_batch_free(tb);

    // ---- meta.json ----
    char desc[256] = {0};
    llama_model_desc(model, desc, sizeof desc);
    std::string j = "{\n";
    j += "  \"tool\": \"mtmd-ref\",\n  \"version\": 1,\n";
    j += "  \"model\": " + json_str(o.model) + ",\n  \"model_desc\": " + json_str(desc) + ",\n";
    j += "  \"mmproj\": " + (o.text_only ? std::string("null") : json_str(o.mmproj)) + ",\n";
    j += "  \"image\": " + (o.text_only ? std::string("null") : json_str(o.image)) + ",\n";
    if (!o.text_only) j += "  \"bitmap\": {\"nx\": " + std::to_string(bmp_nx) + ", \"ny\": " + std::to_string(bmp_ny) + "},\n";
    j += "  \"prompt\": " + json_str(o.prompt) + ",\n";
    j += "  \"media_marker\": " + json_str(mctx ? mtmd_get_marker(mctx) : mtmd_default_marker()) + ",\n";
    j += "  \"settings\": {\"threads\": " + std::to_string(o.threads) + ", \"n_ctx\": " + std::to_string(o.n_ctx) +
         ", \"n_batch\": " + std::to_string(o.n_batch) + ", \"n_ubatch\": " + std::to_string(o.n_ubatch) +
         ", \"flash_attn\": " + json_str(o.flash_attn) + ", \"cache_type\": " + json_str(o.cache_type) + ", \"add_special\": " + (o.add_special ? "true" : "false") +
         ", \"parse_special\": " + (o.parse_special ? "true" : "false") + ", \"image_min_tokens\": " +
         std::to_string(o.image_min_tokens) + ", \"image_max_tokens\": " + std::to_string(o.image_max_tokens) + "},\n";
    j += "  \"n_vocab\": " + std::to_string(n_vocab) + ",\n";
    j += "  \"n_embd\": " + std::to_string(llama_model_n_embd(model)) + ",\n";
    j += "  \"n_embd_inp\": " + std::to_string(llama_model_n_embd_inp(model)) + ",\n";
    j += "  \"use_mrope\": " + std::string(use_mrope ? "true" : "false") + ",\n";
    j += "  \"chunks\": [\n";
    for (size_t i = 0; i < infos.size(); i++) {
        const chunk_info & ci = infos[i];
        j += "    {\"index\": " + std::to_string(i) + ", \"type\": " + json_str(ci.type) + ", \"n_tokens\": " +
             std::to_string(ci.n_tokens) + ", \"n_pos\": " + std::to_string(ci.n_pos) + ", \"pos_start\": " +
             std::to_string(ci.pos_start);
        if (ci.type == "text") j += ", \"tokens\": " + json_arr(ci.tokens);
        else j += ", \"id\": " + json_str(ci.id) + ", " + ci.files;
        j += i + 1 < infos.size() ? "},\n" : "}\n";
    }
    j += "  ],\n";
    j += "  \"n_past_after_prompt\": " + std::to_string(n_past_prompt) + ",\n";
    j += "  \"logits\": {\"file\": \"logits.f32\", \"dtype\": \"f32\", \"shape\": [" + std::to_string(n_text) + ", " +
         std::to_string(n_vocab) + "],\n    \"tokens\": " + json_arr(logit_tokens) + ",\n    \"positions\": " +
         json_arr(logit_pos) + ",\n    \"chunk\": " + json_arr(logit_chunk) + "},\n";
    j += "  \"generation\": {\"n_predict\": " + std::to_string(o.n_predict) + ", \"tokens\": " + json_arr(gen) +
         ", \"positions\": " + json_arr(gen_pos) + ", \"text\": " + json_str(gen_text) + ", \"stopped_on_eog\": " +
         (stopped_eog ? "true" : "false") + ",\n    \"logits\": {\"file\": \"gen_logits.f32\", \"dtype\": \"f32\", \"shape\": [" +
         std::to_string(gen.size()) + ", " + std::to_string(n_vocab) + "]}}\n";
    j += "}\n";
    write_bin(o.out + "/meta.json", j.data(), j.size());

    if (chunks) mtmd_input_chunks_free(chunks);
    if (mctx) mtmd_free(mctx);
    llama_free(lctx);
    llama_model_free(model);
    llama_backend_free();
    fprintf(stderr, "mtmd-ref: wrote %s (%zu text positions, %zu generated tokens)\n", o.out.c_str(), n_text, gen.size());
    return 0;
}
