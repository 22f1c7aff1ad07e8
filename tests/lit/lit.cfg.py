import os
import lit.formats

config.name = "galaxy"
config.test_format = lit.formats.ShTest(execute_external=True)
config.suffixes = [".mlir", ".test"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.galaxy_tools_dir, "..", "tests", "lit")
config.excludes = ["Inputs", "CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py.in"]
config.environment["PATH"] = os.pathsep.join(
    [config.galaxy_tools_dir, config.llvm_tools_dir, config.environment.get("PATH", "/usr/bin:/bin")])
config.substitutions.append(("%configs", os.path.join(config.galaxy_src_root, "configs")))
config.substitutions.append(("%inputs", os.path.join(config.test_source_root, "Inputs")))
# galaxy-tblgen (the kernel schema's generator) and the include paths it needs.
config.substitutions.append(("%galaxy_tblgen", os.path.join(config.galaxy_tools_dir, "galaxy-tblgen", "galaxy-tblgen") + " -I "
    + os.path.join(config.galaxy_src_root, "dialects", "include") + " -I "
    + os.path.join(os.path.dirname(config.llvm_tools_dir), "include")))
config.substitutions.append(("%galaxy_td", os.path.join(config.galaxy_src_root, "dialects", "include", "galaxy")))
