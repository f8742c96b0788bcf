// Memory-maps a model file read-only (POSIX mmap or Win32 file mapping).
#include "base/mapped-file.h"

#include <cerrno>
#include <cstring>

#ifdef _WIN32
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#else
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

#ifndef _WIN32
void aglm_mapped_release(const uint8_t *base, uint64_t offset, uint64_t size) {
  const uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
  uint64_t begin = ((uint64_t)(uintptr_t)(base + offset) + page - 1) / page * page;
  uint64_t end = ((uint64_t)(uintptr_t)(base + offset + size)) / page * page;
  if (end > begin) madvise((void *)(uintptr_t)begin, end - begin, MADV_DONTNEED);
}

aglm_result aglm_mapped_file::open(const std::string &path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    return aglm_result::fail(e == ENOENT ? AGLM_ERR_FILE_NOT_FOUND : AGLM_ERR_IO,
                             "cannot open " + path + ": " + std::strerror(e));
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return aglm_result::fail(AGLM_ERR_IO, "cannot stat " + path + ": " + std::strerror(e));
  }
  size_ = (uint64_t)st.st_size;
  if (size_ == 0) {
    ::close(fd);
    return aglm_result::fail(AGLM_ERR_IO, path + " is empty");
  }
  void *p = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
  int e = errno;
  ::close(fd);
  if (p == MAP_FAILED) return aglm_result::fail(AGLM_ERR_IO, "cannot map " + path + ": " + std::strerror(e));
  data_ = static_cast<uint8_t *>(p);
  return aglm_result::ok();
}

aglm_mapped_file::~aglm_mapped_file() {
  if (data_) munmap(data_, size_);
}
#else
void aglm_mapped_release(const uint8_t *, uint64_t, uint64_t) {}

aglm_result aglm_mapped_file::open(const std::string &path) {
  HANDLE f = CreateFileA(path.c_str(), GENERIC_READ, FILE_SHARE_READ, nullptr, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL,
                         nullptr);
  if (f == INVALID_HANDLE_VALUE) {
    DWORD e = GetLastError();
    return aglm_result::fail(e == ERROR_FILE_NOT_FOUND ? AGLM_ERR_FILE_NOT_FOUND : AGLM_ERR_IO, "cannot open " + path);
  }
  LARGE_INTEGER sz;
  GetFileSizeEx(f, &sz);
  size_ = (uint64_t)sz.QuadPart;
  HANDLE m = CreateFileMappingA(f, nullptr, PAGE_READONLY, 0, 0, nullptr);
  if (!m) {
    CloseHandle(f);
    return aglm_result::fail(AGLM_ERR_IO, "cannot map " + path);
  }
  data_ = static_cast<uint8_t *>(MapViewOfFile(m, FILE_MAP_READ, 0, 0, 0));
  file_ = f;
  mapping_ = m;
  if (!data_) return aglm_result::fail(AGLM_ERR_IO, "cannot map " + path);
  return aglm_result::ok();
}

aglm_mapped_file::~aglm_mapped_file() {
  if (data_) UnmapViewOfFile(data_);
  if (mapping_) CloseHandle((HANDLE)mapping_);
  if (file_) CloseHandle((HANDLE)file_);
}
#endif
