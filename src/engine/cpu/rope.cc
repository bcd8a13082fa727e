#include "common.h"
namespace lmf {
void registerRope(Napi::Env, Napi::Object) {}
}
