#include "core/error.h"
#include "trainer/optimizer.h"

#include <gtest/gtest.h>

#include <cmath>

namespace {

// Gradients that depend only on the step: g_t[i] = sin(1.7 t + 0.9 (i + 3k)) (1 + i % 3) for parameter k.
void set_gradients(std::vector<torch::Tensor>& params, int t) {
  for (size_t k = 0; k < params.size(); ++k) {
    auto g = torch::empty({params[k].numel()}, torch::kFloat64);
    for (int64_t i = 0; i < g.numel(); ++i)
      g[i] = std::sin(1.7 * t + 0.9 * static_cast<double>(i + 3 * static_cast<int64_t>(k))) * (1 + (i % 3));
    params[k].mutable_grad() = g.reshape(params[k].sizes());
  }
}

// Parameters after each of 8 steps, lr 0.1, betas (0.9, 0.999), eps 1e-8, computed once with torch.optim in
// float64 (PyTorch 2.11). RAdam with weight_decay 0.01: steps 1-5 are un-rectified (rho_5 = 4.996 <= 5),
// steps 6-8 rectified.
const double kRAdam[8][7] = {
    {0.40033351895475311, -1.1021002743642929, 2.1032349683068858, 0.19506020738895161, 0.36625348844478028,
     -0.27477317915475108, 0.32670309598741237},
    {0.36636191039844057, -1.0534449897872447, 2.2905216173721157, 0.24957356363625532, 0.37565589179641168,
     -0.42040659526635787, 0.26102644546294262},
    {0.37895366526599789, -1.0017338896926598, 2.3438196686517139, 0.2470325787955884, 0.33252253674956911,
     -0.49284744419207277, 0.25194949976362929},
    {0.37340583198389421, -1.0222365182925477, 2.3168731720073561, 0.24734389529486106, 0.34997834318200066,
     -0.46085692605162493, 0.25585537593789331},
    {0.34962296565931805, -1.0386929013727881, 2.3521804338552026, 0.27142975027196437, 0.38504634666244247,
     -0.46734648709419785, 0.2350091137786125},
    {0.34948874130014679, -1.0381639081805374, 2.3529803153795954, 0.27186385702466748, 0.38482537130547495,
     -0.46808703254637518, 0.23429281488489187},
    {0.34988144667939441, -1.0377926577677739, 2.3529379571722213, 0.27152731558557869, 0.38439425769057539,
     -0.46826385909901774, 0.23447048933433762},
    {0.34946399842381859, -1.0383352057619319, 2.3525777465486355, 0.27171610115979866, 0.38491365374138609,
     -0.46775436863544134, 0.23450418428350769}};
const double kAdam[8][7] = {
    {0.40000000100840521, -1.0999999990300704, 2.0999999990497455, 0.19999999894914058, 0.29999999939923161,
     -0.20000000401174287, 0.30000000137180038},
    {0.35369359508521903, -1.0679853626842435, 2.1938826642220248, 0.27980722802798397, 0.30646232074749491,
     -0.26860641830644821, 0.20116391086705426},
    {0.3700161404670837, -1.0276501644050535, 2.2226459272178993, 0.27687656841481117, 0.27681058280451593,
     -0.30990362366758961, 0.18935346817713991},
    {0.36300202618084187, -1.042305928694524, 2.2102731755113449, 0.27761681974322072, 0.2886658851401418,
     -0.29479851629213394, 0.19567161122053853},
    {0.33168058342954865, -1.0556121358594914, 2.2284562261699015, 0.30952330238626868, 0.31394724248235117,
     -0.29832411193139147, 0.16780923884624427},
    {0.32700252729597373, -1.0358129826735207, 2.2604664944806738, 0.3266530196660653, 0.30561502591833389,
     -0.32719525822083007, 0.14043830351735606},
    {0.33952674592747473, -1.02522865465423, 2.2602485943277615, 0.31668754403779192, 0.2926919803879855,
     -0.33280463285313283, 0.14623932458133979},
    {0.3292472333016061, -1.0399532202512838, 2.2520888150155867, 0.32189843292715092, 0.30633972341911797,
     -0.3198605406978145, 0.14749589362960533}};

void check_trajectory(onestep::OptimizerKind kind, double weight_decay, const double (&expected)[8][7]) {
  std::vector<torch::Tensor> params{torch::tensor({0.5, -1.0, 2.0}, torch::kFloat64),
                                    torch::tensor({0.1, 0.2, -0.3, 0.4}, torch::kFloat64).reshape({2, 2})};
  onestep::AdamHyper hyper;
  hyper.weight_decay = weight_decay;
  auto optimizer = onestep::make_optimizer(kind, {{"a", params[0]}, {"b", params[1]}}, hyper);
  for (int t = 1; t <= 8; ++t) {
    set_gradients(params, t);
    optimizer->step(0.1);
    auto flat = torch::cat({params[0].flatten(), params[1].flatten()});
    for (int i = 0; i < 7; ++i)
      EXPECT_NEAR(flat[i].item<double>(), expected[t - 1][i], 1e-12)
          << onestep::enum_name(kind) << " step " << t << " entry " << i;
  }
  EXPECT_EQ(optimizer->steps_taken(), 8);
}

}  // namespace

TEST(Optimizer, RAdamMatchesTorchIncludingUnrectifiedSteps) {
  check_trajectory(onestep::OptimizerKind::RAdam, 0.01, kRAdam);
}
TEST(Optimizer, AdamMatchesTorch) { check_trajectory(onestep::OptimizerKind::Adam, 0.0, kAdam); }

TEST(Optimizer, RAdamRhoAndRectificationHandValues) {
  // rho_inf = 2 / (1 - 0.999) - 1 = 1999; rho_1 = 1999 - 2 * 0.999 / 0.001 = 1.
  EXPECT_NEAR(onestep::RAdam::rho(1, 0.999), 1.0, 1e-9);
  EXPECT_NEAR(onestep::RAdam::rho(5, 0.999), 4.995998000395048, 1e-9);
  EXPECT_NEAR(onestep::RAdam::rectification(6, 0.999), 0.02582111280185855, 1e-12);
}

TEST(Optimizer, StateRoundTripContinuesIdentically) {
  auto make = [] {
    return std::vector<torch::Tensor>{torch::tensor({0.5, -1.0, 2.0}, torch::kFloat64),
                                      torch::tensor({0.1, 0.2, -0.3, 0.4}, torch::kFloat64).reshape({2, 2})};
  };
  auto a = make(), b = make();
  auto opt_a = onestep::make_optimizer(onestep::OptimizerKind::RAdam, {{"a", a[0]}, {"b", a[1]}}, {});
  auto opt_b = onestep::make_optimizer(onestep::OptimizerKind::RAdam, {{"a", b[0]}, {"b", b[1]}}, {});
  for (int t = 1; t <= 4; ++t) {
    set_gradients(a, t);
    opt_a->step(0.1);
  }
  // b takes over a's weights and optimizer state, then both go on.
  for (size_t k = 0; k < a.size(); ++k) b[k].detach().copy_(a[k].detach());
  auto state = opt_a->state_tensors();
  opt_b->load_state_tensors([&](const std::string& name) -> const torch::Tensor* {
    for (auto& [n, t] : state)
      if (n == name) return &t;
    return nullptr;
  });
  for (int t = 5; t <= 8; ++t) {
    set_gradients(a, t);
    set_gradients(b, t);
    opt_a->step(0.1);
    opt_b->step(0.1);
  }
  EXPECT_TRUE(torch::equal(a[0], b[0]));
  EXPECT_TRUE(torch::equal(a[1], b[1]));
}

TEST(Optimizer, RejectsBadSettingsAndMissingState) {
  EXPECT_EQ(onestep::enum_from_name<onestep::OptimizerKind>("sgd"), std::nullopt);  // train.optimizer refuses it
  onestep::AdamHyper bad;
  bad.beta2 = 1.0;
  EXPECT_THROW(onestep::make_optimizer(onestep::OptimizerKind::RAdam, {}, bad), onestep::Error);
  auto p = torch::zeros({2}, torch::kFloat64);
  auto opt = onestep::make_optimizer(onestep::OptimizerKind::Adam, {{"p", p}}, {});
  EXPECT_THROW(opt->load_state_tensors([](const std::string&) -> const torch::Tensor* { return nullptr; }),
               onestep::Error);
}
