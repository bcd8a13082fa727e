#include "common.h"
namespace lmf {
void registerActivation(Napi::Env, Napi::Object) {}
}
