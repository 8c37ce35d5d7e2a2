{
  "targets": [
    {
      "target_name": "frugal_native",
      "sources": ["src/engine/native/kernels.c", "src/engine/native/bf16.c", "src/engine/native/addon.c"],
      "cflags": ["-O3", "-fopenmp", "-std=c11", "-Wall", "-Wno-unused-parameter", "-Wno-psabi", "-fno-math-errno"],
      "include_dirs": ["/usr/include/x86_64-linux-gnu/openblas-pthread"],
      "libraries": ["-lopenblas", "-fopenmp", "-lm"]
    }
  ]
}
