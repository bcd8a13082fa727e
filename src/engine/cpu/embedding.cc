#include "common.h"
namespace lmf {
void registerEmbedding(Napi::Env, Napi::Object) {}
}
