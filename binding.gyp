{
  "targets": [
    {
      "target_name": "lmforge_cpu",
      "sources": ["<!@(node -p \"require('fs').readdirSync('src/engine/cpu').filter(f => f.endsWith('.cc')).map(f => 'src/engine/cpu/' + f).join(' ')\")"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "<!@(pkg-config --cflags-only-I openblas | sed 's/-I//g')"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-O3", "-march=native", "-fopenmp", "-std=c++17", "-fno-math-errno"],
      "cflags_cc!": ["-fno-exceptions"],
      "libraries": ["<!@(pkg-config --libs openblas)", "-fopenmp", "-Wl,-rpath,<!(pkg-config --variable=libdir openblas)"]
    }
  ]
}
