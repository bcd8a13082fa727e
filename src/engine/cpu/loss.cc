#include "common.h"
namespace lmf {
void registerLoss(Napi::Env, Napi::Object) {}
}
