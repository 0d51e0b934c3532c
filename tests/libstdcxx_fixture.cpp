// A program that defines a symbol of libstdc++'s internals itself (std::locale::_Impl's
// destructor, by its mangled name), as an executable linked by a mismatched compiler does:
// cmake/check_libstdcxx.cmake must refuse it (ctest libstdcxx_check).
extern "C" void graft_fake_locale_impl_dtor() __asm__("_ZNSt6locale5_ImplD2Ev");
extern "C" void graft_fake_locale_impl_dtor() {}
int main() { return 0; }
