#include "common.h"
namespace lmf {
void registerNorm(Napi::Env, Napi::Object) {}
}
