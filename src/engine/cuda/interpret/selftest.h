// The interpreted engine's self-checks of its CUDA model (selftest.cc), run by name from JavaScript.
#pragma once
#include <string>
#include <vector>

namespace lmf_interp {

std::vector<std::string> selfTestNames();
// "" when the check passed, else what went wrong.
std::string runSelfTest(const std::string& name);

}  // namespace lmf_interp
