// Runs a libFuzzer entry point over every file of the given directories (or
// files) without a fuzzing engine, so fuzz corpora are replayed as ordinary
// tests in every CI run, under the sanitizers when they are enabled.
#include <dirent.h>
#include <sys/stat.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

static int run_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot open %s\n", path.c_str());
    return 1;
  }
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
  return 0;
}

int main(int argc, char** argv) {
  int files = 0;
  int failures = 0;
  for (int i = 1; i < argc; i++) {
    struct stat st {};
    if (stat(argv[i], &st) != 0) {
      std::fprintf(stderr, "no such corpus: %s\n", argv[i]);
      return 1;
    }
    if (S_ISDIR(st.st_mode)) {
      DIR* d = opendir(argv[i]);
      if (!d) return 1;
      while (dirent* e = readdir(d)) {
        std::string name = e->d_name;
        if (name == "." || name == "..") continue;
        failures += run_file(std::string(argv[i]) + "/" + name);
        files++;
      }
      closedir(d);
    } else {
      failures += run_file(argv[i]);
      files++;
    }
  }
  // An empty corpus would make this test pass without checking anything.
  if (files == 0) {
    std::fprintf(stderr, "corpus is empty\n");
    return 1;
  }
  std::printf("replayed %d corpus files\n", files);
  return failures == 0 ? 0 : 1;
}
