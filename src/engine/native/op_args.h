// Every op's arguments as one struct, generated from the op table (op_table.h) and shared by the CPU
// (src/engine/cpu) and CUDA (src/engine/cuda) engines. For an op `name` with struct `Struct`:
//   Struct::kOp                       "name"
//   Struct::At::<arg>                 the argument's position in the call (a buffer's handle; its offset follows)
//   Struct::At::kCount                how many numbers the call passes
//   members                           one per argument (buffers as typed pointers, null when absent), plus the
//                                     LET members; a SHAPED op's scalars are the members of its shape (params.h)
//   read(call)                        reads and checks every argument (op_args.cc): positions, dtypes, bounds,
//                                     then what check() adds
//   check(call)                       the op's own checks and derived members, hand-written in op_args.cc
//   fail(msg)                         throws "name: msg"
// Each engine defines `op::name(const Struct&)`, which only computes or launches; registerOps registers them all.
// Checks that need the data itself (token ids, targets) are not here: on the CPU they run on the host in the
// op, on CUDA the data lives on the device and the kernels flag bad values.
#pragma once
#include <string>

#include "glue.h"
#include "op_table.h"
#include "params.h"

namespace lmf {

// Members of the op struct, by argument kind (the scalars come from LMF_SCALAR_MEMBER or from the shape).
#define LMF_MEMBER(kind, ...) LMF_MEMBER_##kind(__VA_ARGS__)
#define LMF_MEMBER_BUF(name, T, count) T* name = nullptr;
#define LMF_MEMBER_OPT(name, T, count) T* name = nullptr;
#define LMF_MEMBER_WHEN(cond, name, T, count) T* name = nullptr;
#define LMF_MEMBER_ANY(name, T, count, dt) T* name = nullptr;
#define LMF_MEMBER_ACT(name, T, count) Act<T> name;
#define LMF_MEMBER_INT(name)
#define LMF_MEMBER_NUM(name)
#define LMF_MEMBER_FLAG(name)
#define LMF_MEMBER_HOST(name) TypedView name;
#define LMF_MEMBER_LET(T, name) T name{};

#define LMF_SCALAR_MEMBER(kind, ...) LMF_SCALAR_MEMBER_##kind(__VA_ARGS__)
#define LMF_SCALAR_MEMBER_BUF(name, T, count)
#define LMF_SCALAR_MEMBER_OPT(name, T, count)
#define LMF_SCALAR_MEMBER_WHEN(cond, name, T, count)
#define LMF_SCALAR_MEMBER_ANY(name, T, count, dt)
#define LMF_SCALAR_MEMBER_ACT(name, T, count)
#define LMF_SCALAR_MEMBER_INT(name) int64_t name = 0;
#define LMF_SCALAR_MEMBER_NUM(name) double name = 0;
#define LMF_SCALAR_MEMBER_FLAG(name) bool name = false;
#define LMF_SCALAR_MEMBER_HOST(name)
#define LMF_SCALAR_MEMBER_LET(T, name)

// Positions: a buffer takes two (handle, then offset), every other argument one; LET members none.
#define LMF_POSITION(kind, ...) LMF_POSITION_##kind(__VA_ARGS__)
#define LMF_POSITION_BUF(name, T, count) name, name##_offset,
#define LMF_POSITION_OPT(name, T, count) name, name##_offset,
#define LMF_POSITION_WHEN(cond, name, T, count) name, name##_offset,
#define LMF_POSITION_ANY(name, T, count, dt) name, name##_offset,
#define LMF_POSITION_ACT(name, T, count) name, name##_offset,
#define LMF_POSITION_INT(name) name,
#define LMF_POSITION_NUM(name) name,
#define LMF_POSITION_FLAG(name) name,
#define LMF_POSITION_HOST(name) name,
#define LMF_POSITION_LET(T, name)

#define LMF_OP_STRUCT(name, Struct, Base)                                                  \
  struct Struct : Base {                                                                   \
    static constexpr const char* kOp = #name;                                              \
    struct At {                                                                            \
      enum : size_t { LMF_ARGS_##name(LMF_POSITION) kCount };                              \
    };                                                                                     \
    LMF_ARGS_##name(LMF_MEMBER) void read(const Args& call);                               \
    void check(const Args& call);                                                          \
    [[noreturn]] void fail(const std::string& msg) const { opFail(kOp, msg); }             \
  };
#define LMF_OWN_SCALARS(name, Struct)                   \
  struct Struct##Scalars {                              \
    LMF_ARGS_##name(LMF_SCALAR_MEMBER)                  \
  };                                                    \
  LMF_OP_STRUCT(name, Struct, Struct##Scalars)
LMF_OPS(LMF_OWN_SCALARS, LMF_OP_STRUCT)

// The engines' ops, one per table entry: each engine defines all of them.
namespace op {
#define LMF_DECLARE_OP(name, Struct) void name(const Struct& p);
#define LMF_DECLARE_SHAPED(name, Struct, Shape) LMF_DECLARE_OP(name, Struct)
LMF_OPS(LMF_DECLARE_OP, LMF_DECLARE_SHAPED)
}  // namespace op

// Registers every op of the table (as op::<name>) and `opTable()`, which returns the table to JavaScript:
// { name: [[argument, kind], ...] } with kind buf, opt, int, num, flag or host (an ACT argument is a buf).
void registerOps(Napi::Env env, Napi::Object exports);

}  // namespace lmf
