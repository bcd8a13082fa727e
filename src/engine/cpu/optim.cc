#include "common.h"
namespace lmf {
void registerOptim(Napi::Env, Napi::Object) {}
}
