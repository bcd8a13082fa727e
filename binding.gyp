{
  "variables": {
    "lmforge_have_mpi": "<!(node scripts/detect-mpi.cjs have)",
    "lmforge_have_nccl": "<!(node scripts/detect-mpi.cjs nccl)"
  },
  "targets": [
    {
      "target_name": "lmforge_cpu",
      "sources": ["<!@(node -p \"['src/engine/cpu', 'src/engine/native'].flatMap(d => require('fs').readdirSync(d).filter(f => f.endsWith('.cc')).map(f => d + '/' + f)).join(' ')\")"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "<!@(pkg-config --cflags-only-I openblas | sed 's/-I//g')"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-O3", "-march=native", "-fopenmp", "-std=c++17", "-fno-math-errno"],
      "cflags_cc!": ["-fno-exceptions"],
      "libraries": ["<!@(pkg-config --libs openblas)", "-fopenmp", "-Wl,-rpath,<!(pkg-config --variable=libdir openblas)"]
    },
    {
      "target_name": "lmforge_cuda_interpret",
      "sources": ["<!@(node -p \"['src/engine/cuda', 'src/engine/cuda/interpret', 'src/engine/native'].flatMap(d => require('fs').readdirSync(d).filter(f => f.endsWith('.cc')).map(f => d + '/' + f)).join(' ')\")"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "src/engine/cuda/interpret/include"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "LMF_CUDA_INTERPRET=1"],
      "cflags": ["-fvisibility=hidden"],
      "cflags_cc": ["-O2", "-std=c++17", "-Wno-unknown-pragmas"],
      "cflags_cc!": ["-fno-exceptions"]
    },
    {
      "target_name": "lmforge_mpi",
      "conditions": [
        ["lmforge_have_mpi=='yes'", {
          "sources": ["<!@(node -p \"require('fs').readdirSync('src/parallel/native').filter(f => f.endsWith('.cc')).map(f => 'src/parallel/native/' + f).join(' ')\")"],
          "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "<!@(node scripts/detect-mpi.cjs cflags)"],
          "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "OMPI_SKIP_MPICXX=1", "MPICH_SKIP_MPICXX=1"],
          "cflags_cc": ["-O2", "-std=c++17"],
          "cflags_cc!": ["-fno-exceptions"],
          "libraries": ["<!@(node scripts/detect-mpi.cjs libs)", "-ldl"]
        }, {
          "type": "none"
        }],
        ["lmforge_have_mpi=='yes' and lmforge_have_nccl=='yes'", {
          "defines": ["LMFORGE_HAVE_NCCL=1"],
          "include_dirs": ["<!@(node scripts/detect-mpi.cjs ncclinc)"],
          "libraries": ["<!@(node scripts/detect-mpi.cjs nccllibs)"]
        }]
      ]
    }
  ]
}
