// Export: FPGA images, firmware C, programming plan, manifest. See docs/EXPORT.md.
